package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQL creates a database with a unique name for the calling test on the
// server of [MySQLServerDSN], drops it when the test ends, and returns a
// DSN of it with parseTime=true, clientFoundRows=true (UPDATE reports
// matched rows, which the epoch fence relies on) and multiStatements=false.
func MySQL(t testing.TB) string {
	t.Helper()
	server := MySQLServerDSN(t)
	cfg, err := mysql.ParseDSN(server)
	if err != nil {
		t.Fatalf("parse mysql dsn from %s: %v", EnvMySQLDSN, err)
	}
	name := Unique("eddy_" + testName(t, 40))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := execServer(ctx, server, "CREATE DATABASE `"+name+"`"); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := execServer(ctx, server, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("cleanup: drop database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	cfg.ParseTime = true
	cfg.ClientFoundRows = true
	cfg.MultiStatements = false
	return cfg.FormatDSN()
}

// execServer runs one statement on a fresh connection to the server.
func execServer(ctx context.Context, dsn, stmt string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer func() { _ = db.Close() }()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		return err
	}
	return nil
}
