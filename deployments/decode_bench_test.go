package deployments

import "testing"

// BenchmarkDecodeCreate is the request decoding of a typical create (what
// the API benchmark sends): strict decode, validation and the string checks.
func BenchmarkDecodeCreate(b *testing.B) {
	body := []byte(`{"agent":"agent_bench","environment_id":"env_bench","initial_events":[{"content":[{"text":"benchmark api-17","type":"text"}],"type":"user.message"}],"metadata":{"bench":"api","i":"17"},"name":"api-17","schedule":{"expression":"17 9 * * *","timezone":"UTC","type":"cron"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCreate(body); err != nil {
			b.Fatal(err)
		}
	}
}
