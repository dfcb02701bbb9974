package webhooks

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sandbox0/sandbox0d/store"
)

// payload is the SDK's BetaWebhookEvent (UnwrapWebhookEvent), field by field.
type payload struct {
	Type      string      `json:"type"` // always "event"
	ID        string      `json:"id"`
	CreatedAt string      `json:"created_at"`
	Data      payloadData `json:"data"`
}

type payloadData struct {
	Type           string `json:"type"`
	ID             string `json:"id"`
	OrganizationID string `json:"organization_id"`
	WorkspaceID    string `json:"workspace_id"`
}

// renderPayload is a pure function of the stored event and the two
// configured ids, so every attempt of a delivery sends the same body.
func renderPayload(e store.WebhookEvent, orgID, workspaceID string) []byte {
	body, _ := json.Marshal(payload{
		Type:      "event",
		ID:        e.ID,
		CreatedAt: e.CreatedAt.UTC().Format(time.RFC3339Nano),
		Data:      payloadData{Type: e.Type, ID: e.ObjectID, OrganizationID: orgID, WorkspaceID: workspaceID},
	})
	return body
}

// signHeaders sets the Standard Webhooks headers: the event id, the
// attempt's timestamp, and one v1 signature per key, space-separated.
func signHeaders(h http.Header, signers []*standardwebhooks.Webhook, id string, at time.Time, body []byte) error {
	sigs := make([]string, 0, len(signers))
	for _, s := range signers {
		sig, err := s.Sign(id, at, body)
		if err != nil {
			return err
		}
		sigs = append(sigs, sig)
	}
	h.Set(standardwebhooks.HeaderWebhookID, id)
	h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(standardwebhooks.HeaderWebhookSignature, strings.Join(sigs, " "))
	return nil
}
