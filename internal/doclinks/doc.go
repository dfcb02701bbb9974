// Package doclinks holds the test that keeps the manual's links true: every
// relative link in README.md and docs/ names a file of this checkout and,
// with a #fragment, a heading of that file.
package doclinks
