package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// sandbox0d cluster status: GET /admin/cluster (issue 25).

func newClusterCommand(cc *commandContext) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Inspect the nodes sharing an etcd store (store.type etcd)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Nodes, leader, lease ages, etcd endpoints and their health, this node's role",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			data, err := client.get(cmd.Context(), "/admin/cluster", nil)
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			var st clusterStatus
			if err := decodeJSON(data, "the cluster status", &st); err != nil {
				return err
			}
			return writeClusterStatus(cmd.OutOrStdout(), st)
		},
	})
	cmd.AddCommand(newCordonCommands(cc)...) // issue 26: cordon|uncordon NODE
	return cmd
}

type clusterStatus struct {
	Engine string `json:"engine"`
	Node   string `json:"node"`
	Role   string `json:"role"`
	Leader string `json:"leader"`
	Nodes  []struct {
		Name         string    `json:"name"`
		AdvertiseURL string    `json:"advertise_url"`
		Since        time.Time `json:"since"`
	} `json:"nodes"`
	Endpoints []struct {
		URL     string `json:"url"`
		Healthy bool   `json:"healthy"`
		Version string `json:"version"`
		Leader  bool   `json:"raft_leader"`
		Error   string `json:"error"`
	} `json:"endpoints"`
	LeaseAges  map[string]string `json:"lease_ages"`
	ReadMirror struct {
		Enabled  bool   `json:"enabled"`
		Reason   string `json:"reason"`
		Live     bool   `json:"live"`
		Keys     int    `json:"keys"`
		Revision int64  `json:"revision"`
		Served   uint64 `json:"served"`
		Missed   uint64 `json:"missed"`
	} `json:"read_mirror"`
}

func writeClusterStatus(w io.Writer, st clusterStatus) error {
	if st.Engine != "etcd" {
		_, err := fmt.Fprintf(w, "Store: %s (one node: %s leads)\n", st.Engine, st.Node)
		return err
	}
	fmt.Fprintf(w, "Store:  etcd\nNode:   %s (%s)\nLeader: %s\n\n", st.Node, st.Role, st.Leader)
	tw := newTable(w)
	writeRow(tw, "NODE", "ADVERTISE URL", "LEASE AGE", "ROLE")
	for _, n := range st.Nodes {
		role := "follower"
		if n.Name == st.Leader {
			role = "leader"
		}
		writeRow(tw, oneLine(n.Name), oneLine(n.AdvertiseURL), st.LeaseAges[n.Name], role)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	writeRow(tw, "ENDPOINT", "HEALTH", "VERSION", "RAFT")
	for _, e := range st.Endpoints {
		health, raft := "healthy", ""
		if !e.Healthy {
			health = "unreachable: " + strings.TrimSpace(e.Error)
		}
		if e.Leader {
			raft = "leader"
		}
		writeRow(tw, e.URL, cell(health, 60), e.Version, raft)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	m := st.ReadMirror
	switch {
	case !m.Enabled:
		_, err := fmt.Fprintf(w, "\nRead mirror: off (%s)\n", oneLine(m.Reason))
		return err
	case !m.Live:
		_, err := fmt.Fprintf(w, "\nRead mirror: loading (reads go to etcd meanwhile); %d served, %d read from etcd\n", m.Served, m.Missed)
		return err
	}
	_, err := fmt.Fprintf(w, "\nRead mirror: %d deployments at revision %d; %d reads served, %d read from etcd\n", m.Keys, m.Revision, m.Served, m.Missed)
	return err
}
