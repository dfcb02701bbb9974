package main

import (
	"bufio"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// metricSample is one line of the Prometheus text format.
type metricSample struct {
	name   string
	labels map[string]string
	value  float64
}

// metricSet is a parsed /metrics scrape.
type metricSet []metricSample

// parseMetrics reads the Prometheus text exposition format (no escapes in
// label values are needed for the daemon's metrics).
func parseMetrics(r io.Reader) (metricSet, error) {
	var out metricSet
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		var s metricSample
		rest := line
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			s.name = line[:i]
			s.labels = parseLabels(line[i+1 : j])
			rest = strings.TrimSpace(line[j+1:])
		} else {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			s.name, rest = f[0], f[1]
		}
		if f := strings.Fields(rest); len(f) > 0 {
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				continue
			}
			s.value = v
			out = append(out, s)
		}
	}
	return out, sc.Err()
}

func parseLabels(s string) map[string]string {
	m := map[string]string{}
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			break
		}
		key := strings.TrimSpace(s[:eq])
		end := strings.IndexByte(s[eq+2:], '"')
		if end < 0 {
			break
		}
		m[key] = s[eq+2 : eq+2+end]
		s = strings.TrimLeft(s[eq+2+end+1:], ", ")
	}
	return m
}

// sum adds the values of name whose labels include every pair of match.
func (ms metricSet) sum(name string, match map[string]string) float64 {
	total := 0.0
	for _, s := range ms {
		if s.name != name {
			continue
		}
		ok := true
		for k, v := range match {
			if s.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// byLabel sums name grouped by one label.
func (ms metricSet) byLabel(name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range ms {
		if s.name == name {
			out[s.labels[label]] += s.value
		}
	}
	return out
}

// histogramQuantile estimates quantile q of a histogram (name without the
// _bucket suffix) by linear interpolation within the bucket, as Prometheus'
// histogram_quantile does. NaN when the histogram is empty.
func (ms metricSet) histogramQuantile(name string, q float64) float64 {
	type bucket struct{ le, count float64 }
	var bs []bucket
	for _, s := range ms {
		if s.name != name+"_bucket" {
			continue
		}
		le, err := strconv.ParseFloat(s.labels["le"], 64)
		if s.labels["le"] == "+Inf" {
			le, err = math.Inf(1), nil
		}
		if err == nil {
			bs = append(bs, bucket{le, s.value})
		}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	if len(bs) == 0 || bs[len(bs)-1].count == 0 {
		return math.NaN()
	}
	rank := q * bs[len(bs)-1].count
	prevLe, prevCount := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return prevLe // above the highest finite bucket: report its bound
			}
			if b.count == prevCount {
				return b.le
			}
			return prevLe + (b.le-prevLe)*(rank-prevCount)/(b.count-prevCount)
		}
		prevLe, prevCount = b.le, b.count
	}
	return prevLe
}
