package records

import "errors"

// ErrBound is what Snapshot returns (wrapped) when the table would pass
// the bound given to SetLimit: the snapshot is lost, and the table is of
// no more use (close it).
var ErrBound = errors.New("records: the table would pass its memory bound")
