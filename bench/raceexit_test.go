package main

// No 1 s race-runtime sleep at exit, for the test binary and for the
// daemons it re-executes itself as (they inherit GORACE).
import _ "github.com/sandbox0/sandbox0d/internal/raceexit"
