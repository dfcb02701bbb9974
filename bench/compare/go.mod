module github.com/sandbox0/sandbox0d/bench/compare

go 1.26.8

require (
	github.com/go-co-op/gocron/v2 v2.21.2
	github.com/google/uuid v1.6.0
	github.com/jonboulle/clockwork v0.5.0
	github.com/robfig/cron/v3 v3.0.1
	github.com/sandbox0/sandbox0d v0.0.0
)

require github.com/adhocore/gronx v1.20.4 // indirect

replace github.com/sandbox0/sandbox0d => ../..
