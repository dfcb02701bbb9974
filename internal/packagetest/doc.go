// Package packagetest checks the packages packaging/ builds, without
// installing them: two builds of one commit are byte-identical, the tarball
// holds exactly the .deb's files, and the files are the ones
// docs/install.md "Packages" lists. internal/systemdtest installs the .deb
// under a real systemd.
package packagetest
