package layer

import "errors"

var errReadOnlyMount = errors.New("layer lives in a read-only store")
