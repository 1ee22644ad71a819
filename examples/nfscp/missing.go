package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// A path that is not on an NFSv4 server fails with "no such file or
// directory", which does not tell a user whether they mistyped a name or
// are looking outside everything the server exports. NFSv4 has no mount
// protocol to ask for the exports: a server shows them as directories of
// its NFSv4 root (a pseudo file system on Ganesha and on Linux when no
// export has fsid=0; the fsid=0 export itself otherwise, whose path then
// does not appear in URLs). So when a directory on the way is missing,
// nfscp names the first component that is missing and what its
// directory holds, every name in Go's quoted form.

// missingShown is how many names of the directory missingHint shows.
const missingShown = 8

// missingHint returns err with the component of name that is missing on
// the server and some of the names beside it, if err says name does not
// exist on an NFS server because a directory on its way does not;
// otherwise err.
func missingHint(ctx context.Context, fsys fileSystem, name string, err error) error {
	n, ok := fsys.(nfsFS)
	if !ok || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	comps := strings.Split(strings.Trim(path.Clean("/"+name), "/"), "/")
	dir := "/"
	for i, c := range comps {
		if c == "" || i == len(comps)-1 {
			// A missing last name is a plain missing file.
			return err
		}
		p := path.Join(dir, c)
		if _, serr := n.Stat(ctx, p); serr == nil {
			dir = p
			continue
		} else if !errors.Is(serr, fs.ErrNotExist) {
			return err
		}
		names, more, lerr := n.someNames(ctx, dir, missingShown)
		if lerr != nil {
			return err
		}
		where := strconv.Quote(dir)
		if dir == "/" {
			where = "the server's NFSv4 root"
		}
		var holds string
		switch {
		case len(names) == 0:
			holds = "which is empty"
		default:
			q := make([]string, len(names))
			for i, nm := range names {
				q[i] = strconv.Quote(nm)
			}
			holds = "which holds " + strings.Join(q, ", ")
			if more {
				holds += " and more"
			}
		}
		return plainError(fmt.Sprintf("no such file or directory: %s has no %s (%s)", where, strconv.Quote(c), holds))
	}
	return err
}

// someNames returns up to max names of the directory dir, in the server's
// order, and whether it holds more; it reads little more of a large
// directory than that.
func (n nfsFS) someNames(ctx context.Context, dir string, max int) (names []string, more bool, err error) {
	f, err := n.c.Open(ctx, dir)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	ents, err := f.WithContext(ctx).ReadDir(max + 1)
	if err != nil && len(ents) == 0 && !errors.Is(err, io.EOF) {
		return nil, false, err
	}
	for _, e := range ents[:min(len(ents), max)] {
		names = append(names, e.Name())
	}
	return names, len(ents) > max, nil
}
