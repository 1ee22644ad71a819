package nfs4

// dirState is a directory File's READDIR cursor. (Stub: filled in with
// READDIR paging.)
type dirState struct{}
