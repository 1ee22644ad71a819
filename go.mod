module github.com/gonfs/nfs

go 1.26.8

require go.uber.org/goleak v1.3.0

require (
	github.com/cenkalti/backoff/v4 v4.3.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
