package hostile

// Faults says how the server misbehaves. Its zero value is a well-behaved
// server: a root directory holding "file" (4096 bytes) and "dir" (three
// regular files "a", "b" and "c").
type Faults struct {
	// Status, for an operation number (RFC 8881 §16.2.1: 53 SEQUENCE,
	// 25 READ, ...), is the status that operation answers every time;
	// the COMPOUND stops there. Absent or 0: the operation runs.
	Status map[uint32]uint32

	// Data is the content of "file". Default: 4096 bytes of a pattern.
	Data []byte
	// Size is the size "file" reports in its attributes. Default:
	// len(Data).
	Size uint64
	// ReadNoEOF makes every READ return the full count asked for, of
	// the pattern, with eof false, at any offset.
	ReadNoEOF bool

	// Entries are the entries of "dir". Default: "a", "b", "c", regular
	// files of mode 0644.
	Entries []Entry
	// Readdir is how READDIR of "dir" misbehaves.
	Readdir ReaddirFault
	// PerPage is how many entries one READDIR page holds at most.
	// Default: all of them.
	PerPage int

	// Reply, if set, sees every reply message (the RPC reply, XID first,
	// without the record marker) and says what to send instead. n counts
	// the server's replies from 0, across connections and SetFaults.
	// It runs on the connection's reader goroutine.
	Reply func(n int, msg []byte) Reply
}

// Entry is an entry of "dir". Name may be anything, "/" and NUL included.
type Entry struct {
	Name string
	Mode uint32 // permission bits; 0 means 0644
	Dir  bool   // a directory instead of a regular file
}

// ReaddirFault is a way for READDIR to misbehave.
type ReaddirFault int

const (
	// ReaddirNormal lists the entries in pages, cookies 3, 4, ... (0
	// to 2 are reserved), and reports the end.
	ReaddirNormal ReaddirFault = iota
	// ReaddirStuck answers every READDIR with the first page, whatever
	// cookie it asks from: the cookie never advances.
	ReaddirStuck
	// ReaddirEndless never reports the end: past the real entries it
	// makes up new ones with new names and cookies, page after page.
	ReaddirEndless
	// ReaddirCycle answers the second page with the first page's
	// cookies, so the listing goes round in a circle.
	ReaddirCycle
)

// Reply is what the server sends for one call.
type Reply struct {
	// Msg is the RPC message to send as one record; nil sends nothing
	// (the call is never answered).
	Msg []byte
	// Twice sends the record twice.
	Twice bool
	// Cut, if positive, writes only the first Cut bytes of the record
	// (its 4-byte marker included) and then closes the connection.
	Cut int
	// Close closes the connection after the record.
	Close bool
}

// Extend returns a Reply hook that appends extra bytes to every reply
// message.
func Extend(extra []byte) func(int, []byte) Reply {
	return func(_ int, msg []byte) Reply { return Reply{Msg: append(msg, extra...)} }
}

// CutEvery returns a Reply hook that, from reply from on, writes half of
// every reply record and closes the connection: bytes arrive, but never a
// whole reply.
func CutEvery(from int) func(int, []byte) Reply {
	return func(n int, msg []byte) Reply {
		if n < from {
			return Reply{Msg: msg}
		}
		return Reply{Msg: msg, Cut: (len(msg) + 4) / 2}
	}
}
