module github.com/gonfs/nfs/examples

go 1.26.0

require (
	github.com/cenkalti/backoff/v4 v4.3.0
	github.com/gonfs/nfs v0.0.0
	github.com/schollz/progressbar/v3 v3.19.1
	golang.org/x/term v0.47.0
)

require (
	github.com/mitchellh/colorstring v0.0.0-20190213212951-d06e56a500db // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/gonfs/nfs => ../
