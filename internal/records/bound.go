package records

import "errors"

// ErrBound is what Snapshot returns (wrapped) when the table would pass
// the bound given to SetLimit: the snapshot is lost, and the table must be
// closed and made anew to start afresh.
var ErrBound = errors.New("records: the table would pass its memory bound")
