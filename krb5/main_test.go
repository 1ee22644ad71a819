package krb5

import (
	"testing"

	"github.com/gonfs/nfs/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyMain(m.Run) }
