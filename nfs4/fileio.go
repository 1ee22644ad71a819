package nfs4

// fileIO is a regular file's open state and write-back. (Stub: filled in
// with OPEN, READ, WRITE, COMMIT and CLOSE.)
type fileIO struct{}
