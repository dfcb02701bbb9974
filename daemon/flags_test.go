package daemon_test

import (
	"testing"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

func newViperWithFlags(t *testing.T, args ...string) *viper.Viper {
	t.Helper()
	v := viper.New()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	daemon.BindServeFlags(fs, v)
	require.NoError(t, fs.Parse(args))
	return v
}
