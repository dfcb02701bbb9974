package console_test

import _ "github.com/sandbox0/sandbox0d/internal/raceexit" // no 1 s race-runtime sleep at exit
