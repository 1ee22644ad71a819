package nfs4_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"syscall"
	"time"

	"github.com/gonfs/nfs/nfs4"
)

// These examples need an NFSv4.1 server, so they are compiled but not run.

func ExampleClient_ReadDir() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := nfs4.Dial(ctx, "nfs.example.com", nfs4.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ents, err := c.ReadDir(ctx, "/export/home")
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range ents {
		// Info needs no round trip: READDIR brought the attributes.
		fi, err := e.Info()
		if err != nil {
			fmt.Println(e.Name(), err)
			continue
		}
		fmt.Println(fi.Mode(), fi.Size(), fi.ModTime().Format(time.DateTime), e.Name())
	}
}

func ExampleClient_MkdirAll() {
	ctx := context.Background()
	c, err := nfs4.Dial(ctx, "nfs.example.com:2049", nfs4.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Parents are made as needed; an existing directory is fine.
	if err := c.MkdirAll(ctx, "/export/projects/2024/reports", 0o755); err != nil {
		log.Fatal(err)
	}
	err = c.Mkdir(ctx, "/export/projects", 0o755)
	fmt.Println(errors.Is(err, fs.ErrExist)) // true
}

func ExampleClient_Rename() {
	ctx := context.Background()
	c, err := nfs4.Dial(ctx, "nfs.example.com", nfs4.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// The server renames atomically: readers see the old file or the new
	// one, never neither.
	err = c.Rename(ctx, "/export/site/index.html.tmp", "/export/site/index.html")
	var le *os.LinkError
	if errors.As(err, &le) {
		fmt.Println("rename failed:", le.Err)
	}
}

func ExampleClient_Remove() {
	ctx := context.Background()
	c, err := nfs4.Dial(ctx, "nfs.example.com", nfs4.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	err = c.Remove(ctx, "/export/tmp")
	switch {
	case errors.Is(err, syscall.ENOTEMPTY):
		// Not empty: remove it and everything in it.
		err = c.RemoveAll(ctx, "/export/tmp")
	case errors.Is(err, fs.ErrNotExist):
		err = nil
	}
	if err != nil {
		log.Fatal(err)
	}
}
