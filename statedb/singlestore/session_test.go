package singlestore

import (
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestOptionalSessionSettings: a server that does not know an optional
// setting's variable still gives connections, with one warning that says
// what is lost; any other failure of the setting refuses the connection.
func TestOptionalSessionSettings(t *testing.T) {
	mc, err := mysql.ParseDSN(freshDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.WarnLevel)
	unknown := &sessionConnector{Connector: connector, log: zap.New(core),
		optional: []optionalStmt{{q: "SET SESSION eddy_no_such_variable = 1", without: "nothing, it is a test"}}}
	for i := range 2 {
		conn, err := unknown.Connect(testCtx(t))
		if err != nil {
			t.Fatalf("connection %d with an unknown optional variable: %v", i, err)
		}
		_ = conn.Close()
	}
	warns := logs.All()
	if len(warns) != 1 {
		t.Fatalf("%d warnings for two connections, want one: %v", len(warns), warns)
	}
	if f := warns[0].ContextMap(); !strings.Contains(f["statement"].(string), "eddy_no_such_variable") || f["without_it"] != "nothing, it is a test" {
		t.Errorf("warning fields %v: want the statement and what is lost", f)
	}

	wrong := &sessionConnector{Connector: connector, log: zap.NewNop(),
		optional: []optionalStmt{{q: "SET SESSION wait_timeout = 'soon'"}}}
	if conn, err := wrong.Connect(testCtx(t)); err == nil {
		_ = conn.Close()
		t.Fatal("a wrong value for a known variable was accepted")
	} else if !strings.Contains(err.Error(), "session setup") {
		t.Errorf("error %v does not name the session setup", err)
	}
}
