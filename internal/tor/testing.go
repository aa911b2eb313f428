package tor

import "testing"

// inTest reports whether this is a test binary (the test binaries of this
// module also run as the pursuance command in their scripts).
func inTest() bool { return testing.Testing() }
