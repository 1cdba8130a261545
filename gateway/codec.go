package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"

	"github.com/parleyhq/parley/actors"
)

// decodeCommand parses one client frame: exactly one JSON object, then
// Command.Validate. Unknown fields are ignored (PROTOCOL.md). On error the
// returned command holds whatever id and session could be read, so the
// error frame can name them.
func decodeCommand(data []byte) (*actors.Command, *actors.Error) {
	cmd := new(actors.Command)
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(cmd); err != nil {
		return salvage(data), actors.Errorf(actors.CodeBadRequest, "malformed frame: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return cmd, actors.Errorf(actors.CodeBadRequest, "malformed frame: more than one JSON value")
	}
	if e := cmd.Validate(); e != nil {
		return cmd, e
	}
	return cmd, nil
}

// salvage reads id and session from a frame that did not decode as a
// whole (a field of the wrong type, say).
func salvage(data []byte) *actors.Command {
	var loose map[string]json.RawMessage
	cmd := new(actors.Command)
	if json.Unmarshal(data, &loose) != nil {
		return cmd
	}
	_ = json.Unmarshal(loose["id"], &cmd.ID)
	_ = json.Unmarshal(loose["session"], &cmd.Session)
	return cmd
}

// jsonProblem describes a decode error without echoing the input.
// jsonKind names what a Go type takes in JSON, for error messages.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return "invalid JSON: " + syn.Error()
	case errors.As(err, &typ) && typ.Field == "":
		return "expected a JSON object"
	case errors.As(err, &typ):
		return "field \"" + typ.Field + "\" must be " + jsonKind(typ.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty or truncated JSON"
	default:
		return "expected a JSON object"
	}
}
