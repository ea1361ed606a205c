//go:build race

package spans

const raceEnabled = true
