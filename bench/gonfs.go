package bench

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/gonfs/nfs/nfs4"
)

// This library's contenders. Each run dials its own Client, as a program
// copying one file would, so connection and session set-up are measured
// too (a few milliseconds against seconds of copying).

// GonfsName is the name of this library's in-process contenders;
// GonfsNoACName of its small-operation contenders with the metadata cache
// off (Config.NoAC).
const (
	GonfsName     = "gonfs"
	GonfsNoACName = "gonfs noac"
)

// dialGonfs dials env's server with the default Config: Hedged policy,
// 1 MiB rsize and wsize, a window of 8 READs or WRITEs in flight.
func dialGonfs(ctx context.Context, env *Env) (*nfs4.Client, error) {
	c, err := nfs4.Dial(ctx, env.Addr(), nfs4.Config{})
	if err != nil {
		return nil, fmt.Errorf("bench: gonfs: %w", err)
	}
	return c, nil
}

// GonfsRead reads TestFile with File.WriteTo (what io.Copy out of a File
// uses) into a local file.
func GonfsRead() Contender {
	return Contender{
		Name: GonfsName, Workload: SeqRead, Ours: true,
		Note: "NFSv4.2 (the default: the highest version the server has), in-process, File.WriteTo (io.WriterTo), default Config",
		Run: func(ctx context.Context, env *Env, target string) (err error) {
			c, err := dialGonfs(ctx, env)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, c.Close()) }()
			f, err := c.Open(ctx, env.RemotePath(TestFile))
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, f.Close()) }()
			out, err := os.Create(target)
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			defer func() { err = errors.Join(err, out.Close()) }()
			_, err = f.WriteTo(out)
			return err
		},
	}
}

// GonfsWrite writes Env.Src with File.ReadFrom (what io.Copy into a File
// uses); Close sends the COMMIT, which is measured.
func GonfsWrite() Contender {
	return Contender{
		Name: GonfsName, Workload: SeqWrite, Ours: true, ToExport: true,
		Note: "NFSv4.2, in-process, File.ReadFrom (io.ReaderFrom), UNSTABLE WRITEs + COMMIT at Close",
		Run: func(ctx context.Context, env *Env, target string) (err error) {
			c, err := dialGonfs(ctx, env)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, c.Close()) }()
			in, err := os.Open(env.Src)
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			defer in.Close()
			f, err := c.Create(ctx, env.RemotePath(target))
			if err != nil {
				return err
			}
			if _, err := f.ReadFrom(in); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		},
	}
}

// GonfsOps returns this library's small-operation contenders, each with
// the metadata cache on (the default Config: GonfsName) and off
// (Config.NoAC: GonfsNoACName): GETATTR through File.Stat on an open file
// (uncached: one COMPOUND of SEQUENCE, PUTFH, GETATTR) and LOOKUP through
// Client.Stat of a path (uncached: SEQUENCE, PUTROOTFH, LOOKUP ×2, GETFH,
// GETATTR). Cached, both are answered from the cache while the file's
// attributes are valid (3 s at first, up to 60 s while it does not
// change), so a run of one second sends about one call in all. Calls from
// many goroutines are pipelined on one connection over the session's
// slots.
func GonfsOps() []OpsContender {
	var ops []OpsContender
	for _, v := range []struct {
		name, how string
		cfg       nfs4.Config
	}{
		{GonfsName, "metadata cache on (default Config)", nfs4.Config{}},
		{GonfsNoACName, "Config.NoAC: every call to the server", nfs4.Config{NoAC: true}},
	} {
		cfg := v.cfg
		ops = append(ops, OpsContender{
			Name: v.name, Op: "GETATTR", Ours: true,
			Note: "File.Stat, " + v.how + "; uncached one COMPOUND (SEQUENCE, PUTFH, GETATTR), pipelined",
			Open: func(ctx context.Context, env *Env) (func(context.Context) error, func() error, error) {
				c, err := nfs4.Dial(ctx, env.Addr(), cfg)
				if err != nil {
					return nil, nil, fmt.Errorf("bench: gonfs: %w", err)
				}
				f, err := c.Open(ctx, env.RemotePath(TestFile))
				if err != nil {
					c.Close()
					return nil, nil, err
				}
				op := func(context.Context) error { _, err := f.Stat(); return err }
				return op, func() error { return errors.Join(f.Close(), c.Close()) }, nil
			},
		}, OpsContender{
			Name: v.name, Op: "LOOKUP", Ours: true,
			Note: "Client.Stat of /export/big, " + v.how + "; uncached one COMPOUND (PUTROOTFH, LOOKUP ×2, GETFH, GETATTR), pipelined",
			Open: func(ctx context.Context, env *Env) (func(context.Context) error, func() error, error) {
				c, err := nfs4.Dial(ctx, env.Addr(), cfg)
				if err != nil {
					return nil, nil, fmt.Errorf("bench: gonfs: %w", err)
				}
				name := env.RemotePath(TestFile)
				op := func(ctx context.Context) error { _, err := c.Stat(ctx, name); return err }
				return op, c.Close, nil
			},
		})
	}
	return ops
}
