module github.com/gonfs/nfs

go 1.26.8

require (
	github.com/cenkalti/backoff/v4 v4.3.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.49.0
)

require github.com/buildbarn/go-xdr v0.0.0-20261005144839-a2095890273e // indirect
