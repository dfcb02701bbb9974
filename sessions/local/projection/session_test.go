package projection

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPlaceholdersAreStableAndDistinct(t *testing.T) {
	creds := []Credential{{VaultID: "v", Name: "A", Value: "secret-a-123", Header: true}, {VaultID: "v", Name: "B", Value: "secret-b-456", Raw: true}}
	s := NewSession()
	env1 := s.Refresh(creds)
	env2 := s.Refresh(creds)
	assert.Equal(t, env1, env2, "the same placeholders every turn")
	assert.True(t, strings.HasPrefix(env1["A"], PlaceholderPrefix))
	assert.Equal(t, "secret-b-456", env1["B"], "an opted-out credential is the value itself")
	other := NewSession().Refresh(creds)
	assert.NotEqual(t, env1["A"], other["A"], "another session gets another placeholder")
	assert.True(t, s.Projects())
	assert.False(t, NewSession().Projects())
}

func TestHostMatches(t *testing.T) {
	assert.True(t, HostMatches("api.example.com", "API.example.com."))
	assert.True(t, HostMatches("*.example.com", "a.b.example.com"))
	assert.False(t, HostMatches("*.example.com", "example.com"))
	assert.False(t, HostMatches("api.example.com", "api.example.com.evil.test"))
	assert.False(t, HostMatches("example.com", "notexample.com"))
}

func TestSubstitutionRespectsScopeAndLocation(t *testing.T) {
	s := NewSession()
	env := s.Refresh([]Credential{
		{Name: "H", Value: "hhhhhhhh", Hosts: []string{"h.test"}, Header: true},
		{Name: "N", Value: "nnnnnnnn", Hosts: []string{"h.test"}}, // neither location: never substituted
	})
	assert.True(t, s.Scoped("h.test"))
	assert.False(t, s.Scoped("other.test"))
	h := http.Header{"Authorization": {"Bearer " + env["H"]}, "X-N": {env["N"]}}
	sub := s.For("h.test")
	sub.RewriteHeader(h)
	assert.Equal(t, "Bearer hhhhhhhh", h.Get("Authorization"))
	assert.Equal(t, env["N"], h.Get("X-N"))
	assert.Equal(t, []byte(env["H"]), sub.RewriteBody([]byte(env["H"])), "header-only: bodies untouched")
	h2 := http.Header{"Authorization": {"Bearer " + env["H"]}}
	s.For("other.test").RewriteHeader(h2)
	assert.Equal(t, "Bearer "+env["H"], h2.Get("Authorization"))
}

func TestRedactor(t *testing.T) {
	s := NewSession()
	s.Refresh([]Credential{{Name: "TOK", Value: `se"cret\value`, Raw: true}, {Name: "SHORT", Value: "abc", Raw: true}})
	r := s.Redactor()
	assert.Equal(t, `{"text":"[redacted:TOK] abc"}`, string(r([]byte(`{"text":"se\"cret\\value abc"}`))))
	assert.Equal(t, `raw [redacted:TOK]`, string(r([]byte(`raw se"cret\value`))))
}
