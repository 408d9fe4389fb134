package ingest_test

import "github.com/wpcdb/wpcdb/internal/cputime"

// processCPU is the CPU time the process has used (internal/cputime).
var processCPU = cputime.Process
