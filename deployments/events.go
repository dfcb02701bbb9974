package deployments

import (
	"bytes"
	"encoding/json"
)

// Initial events are validated strictly against the contract's shapes and
// stored compacted, so what a session receives is exactly what was accepted.

type contentBlock struct {
	Type    string          `json:"type"`
	Text    *string         `json:"text,omitempty"`
	Source  json.RawMessage `json:"source,omitempty"`
	Title   *string         `json:"title,omitempty"`
	Context *string         `json:"context,omitempty"`
}

type blockSource struct {
	Type      string  `json:"type"`
	MediaType *string `json:"media_type,omitempty"`
	Data      *string `json:"data,omitempty"`
	URL       *string `json:"url,omitempty"`
	FileID    *string `json:"file_id,omitempty"`
}

func decodeInitialEvents(raw json.RawMessage) ([]json.RawMessage, error) {
	const field = "initial_events"
	var items []json.RawMessage
	if err := decodeStrict(field, raw, &items); err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, invalid(field, "must contain at least one user.message event")
	}
	if len(items) > MaxInitialEvents {
		return nil, invalid(field, "has %d events, at most %d allowed", len(items), MaxInitialEvents)
	}
	out := make([]json.RawMessage, 0, len(items))
	users := 0
	for i, item := range items {
		path := fieldAt(field, i)
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(item, &head); err != nil {
			return nil, invalid(path, "must be an event object with a type")
		}
		switch head.Type {
		case "user.message":
			if err := checkUserMessage(path, item); err != nil {
				return nil, err
			}
			users++
		case "system.message":
			if err := checkSystemMessage(path, item); err != nil {
				return nil, err
			}
			if i != len(items)-1 {
				return nil, invalid(path, "a system.message must be the last initial event (at most one is allowed)")
			}
			if i == 0 {
				return nil, invalid(path, "a system.message must directly follow a user.message")
			}
		case "user.define_outcome":
			return nil, invalid(path+".type", "user.define_outcome is not supported: outcomes are not implemented by sandbox0d")
		case "":
			return nil, invalid(path+".type", "is required (user.message or system.message)")
		default:
			return nil, invalid(path+".type", "unsupported initial event type %q: expected user.message or system.message", head.Type)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, item); err != nil {
			return nil, invalid(path, "malformed JSON")
		}
		out = append(out, buf.Bytes())
	}
	if users == 0 {
		return nil, invalid(field, "must contain at least one user.message event")
	}
	return out, nil
}

func checkUserMessage(path string, raw json.RawMessage) error {
	var ev struct {
		Type    string            `json:"type"`
		Content []json.RawMessage `json:"content"`
	}
	if err := decodeStrict(path, raw, &ev); err != nil {
		return err
	}
	if len(ev.Content) == 0 {
		return invalid(path+".content", "must contain at least one content block")
	}
	for i, b := range ev.Content {
		if err := checkUserBlock(fieldAt(path+".content", i), b); err != nil {
			return err
		}
	}
	return nil
}

func checkUserBlock(path string, raw json.RawMessage) error {
	var b contentBlock
	if err := decodeStrict(path, raw, &b); err != nil {
		return err
	}
	switch b.Type {
	case "text":
		if b.Source != nil || b.Title != nil || b.Context != nil {
			return invalid(path, "a text block has only type and text")
		}
		return checkText(path+".text", b.Text)
	case "image":
		if b.Text != nil || b.Title != nil || b.Context != nil {
			return invalid(path, "an image block has only type and source")
		}
		return checkSource(path+".source", b.Source, []string{"base64", "url", "file"})
	case "document":
		if b.Text != nil {
			return invalid(path+".text", "not allowed on a document block; use a text source")
		}
		return checkSource(path+".source", b.Source, []string{"base64", "url", "file", "text"})
	case "":
		return invalid(path+".type", "is required (text, image or document)")
	}
	return invalid(path+".type", "unsupported content block type %q: expected text, image or document", b.Type)
}

func checkSystemMessage(path string, raw json.RawMessage) error {
	var ev struct {
		Type    string         `json:"type"`
		Content []contentBlock `json:"content"`
	}
	if err := decodeStrict(path, raw, &ev); err != nil {
		return err
	}
	if len(ev.Content) == 0 {
		return invalid(path+".content", "must contain at least one text block")
	}
	for i, b := range ev.Content {
		p := fieldAt(path+".content", i)
		if b.Type != "text" || b.Source != nil || b.Title != nil || b.Context != nil {
			return invalid(p, "system.message content must be text blocks")
		}
		if err := checkText(p+".text", b.Text); err != nil {
			return err
		}
	}
	return nil
}

func checkText(path string, s *string) error {
	if s == nil || *s == "" {
		return invalid(path, "must be a non-empty string")
	}
	if len(*s) > MaxTextLen {
		return invalid(path, "is %d bytes long, at most %d allowed", len(*s), MaxTextLen)
	}
	return nil
}

func checkSource(path string, raw json.RawMessage, allowed []string) error {
	if len(raw) == 0 || isNull(raw) {
		return invalid(path, "is required")
	}
	var s blockSource
	if err := decodeStrict(path, raw, &s); err != nil {
		return err
	}
	if !contains(allowed, s.Type) {
		return invalid(path+".type", "must be one of %v, got %q", allowed, s.Type)
	}
	switch s.Type {
	case "base64":
		if s.MediaType == nil || *s.MediaType == "" {
			return invalid(path+".media_type", "is required for a base64 source")
		}
		if s.Data == nil || *s.Data == "" {
			return invalid(path+".data", "is required for a base64 source")
		}
		if s.URL != nil || s.FileID != nil {
			return invalid(path, "a base64 source has only type, media_type and data")
		}
	case "url":
		if s.URL == nil || *s.URL == "" {
			return invalid(path+".url", "is required for a url source")
		}
		if s.Data != nil || s.FileID != nil || s.MediaType != nil {
			return invalid(path, "a url source has only type and url")
		}
	case "file":
		if s.FileID == nil || *s.FileID == "" {
			return invalid(path+".file_id", "is required for a file source")
		}
		if s.Data != nil || s.URL != nil || s.MediaType != nil {
			return invalid(path, "a file source has only type and file_id")
		}
	case "text":
		if s.Data == nil {
			return invalid(path+".data", "is required for a text source")
		}
		if s.URL != nil || s.FileID != nil {
			return invalid(path, "a text source has only type, media_type and data")
		}
	}
	return nil
}
