package main

// makePaths lists the paths measured; the first is the reference.
func makePaths() []path {
	return []path{newGodelta(), newCollectorPath(), newRecordsPath()}
}
