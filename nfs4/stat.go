package nfs4

import (
	"context"
	"io/fs"
)

// Stat returns the FileInfo of name, following symbolic links. Its Sys
// method returns the *Attr the server sent. Errors are *fs.PathError.
func (c *Client) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	_, attr, err := c.lookup(ctx, name, true)
	if err != nil {
		return nil, pathError("stat", name, err)
	}
	return newFileInfo(name, attr), nil
}

// Lstat is Stat without following a final symbolic link.
func (c *Client) Lstat(ctx context.Context, name string) (fs.FileInfo, error) {
	_, attr, err := c.lookup(ctx, name, false)
	if err != nil {
		return nil, pathError("lstat", name, err)
	}
	return newFileInfo(name, attr), nil
}
