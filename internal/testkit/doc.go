// Package testkit holds Parley's shared test helpers, all real parts: an
// embedded nats-server with JetStream per test (NewNATS), a scripted
// upstream that speaks Ollama's NDJSON protocol byte for byte for fault
// injection (NewScriptedOllama), its OpenAI-compatible counterpart that
// plays the same scripts as Server-Sent Events (NewScriptedOpenAI), the
// lookup of a real Ollama started by scripts/ollama-test-env.sh
// (RealOllama), and a WebSocket client (DialWS). It is imported only by
// tests.
package testkit
