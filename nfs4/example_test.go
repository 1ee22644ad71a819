package nfs4_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log"
	"strings"

	"github.com/gonfs/nfs/nfs4"
	"github.com/gonfs/nfs/policy"
)

// Dial a server, write a file, read it back and walk the export. (This
// example needs a server, so it is compiled but not run by go test.)
func Example() {
	ctx := context.Background()
	c, err := nfs4.Dial(ctx, "nfs.example:2049", nfs4.Config{
		Policy: policy.Hedged(policy.Options{}), // the default
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	f, err := c.Create(ctx, "/export/hello.txt")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.Copy(f, strings.NewReader("hello, NFS\n")); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil { // COMMIT, then CLOSE
		log.Fatal(err)
	}

	fsys := c.FS("/export")
	b, err := fs.ReadFile(fsys, "hello.txt")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s", b)

	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fmt.Println(p, d.Type())
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
