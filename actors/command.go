package actors

// Command types a client sends (PROTOCOL.md section 3).
const (
	CmdCreate     = "create"
	CmdAttach     = "attach"
	CmdDetach     = "detach"
	CmdSend       = "send"
	CmdStop       = "stop"
	CmdRegenerate = "regenerate"
	CmdPing       = "ping"
)

// Command is one decoded client command. The gateway decodes frames into
// it; fields a type does not use are ignored.
type Command struct {
	Type        string  `json:"type"`
	ID          string  `json:"id,omitempty"`
	Session     string  `json:"session,omitempty"`
	After       string  `json:"after,omitempty"`
	Content     *string `json:"content,omitempty"`
	ClientMsgID string  `json:"client_msg_id,omitempty"`
	ExpectSeq   *uint64 `json:"expect_seq,omitempty"`
	Model       string  `json:"model,omitempty"`
	System      string  `json:"system,omitempty"`
	Title       string  `json:"title,omitempty"`
}

// MaxContentBytes bounds a user message; the frame limit usually bounds it
// first.
const MaxContentBytes = 1 << 20

// MaxTitleBytes bounds a session's title.
const MaxTitleBytes = 200

// SessionIDLen is the length of a session id: 128 random bits in
// unpadded base64url.
const SessionIDLen = 22

// ValidSessionID reports whether id has the form of a session id. Ids go
// into NATS subjects and KV keys, where wildcards (* >), separators and
// length matter: anything else cannot name a session and is not_found
// before it reaches the event log.
func ValidSessionID(id string) bool {
	if len(id) != SessionIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Validate checks the fields the command's type requires.
func (c *Command) Validate() *Error {
	switch c.Type {
	case CmdPing:
		return nil
	case CmdCreate:
		if len(c.Title) > MaxTitleBytes {
			return Errorf(CodeBadRequest, "title is over %d bytes", MaxTitleBytes)
		}
		return nil
	case CmdAttach, CmdDetach, CmdStop, CmdRegenerate:
		if c.Session == "" {
			return Errorf(CodeBadRequest, "%s needs \"session\"", c.Type)
		}
		if !ValidSessionID(c.Session) {
			return errNotFound
		}
		if c.Type == CmdAttach {
			if _, err := ParseCursor(c.After); err != nil {
				return Errorf(CodeBadRequest, "%v", err)
			}
		}
		return nil
	case CmdSend:
		if c.Session == "" {
			return Errorf(CodeBadRequest, "send needs \"session\"")
		}
		if !ValidSessionID(c.Session) {
			return errNotFound
		}
		if c.Content == nil || *c.Content == "" {
			return Errorf(CodeBadRequest, "send needs a non-empty \"content\"")
		}
		if len(*c.Content) > MaxContentBytes {
			return Errorf(CodeTooLarge, "content is over %d bytes", MaxContentBytes)
		}
		return nil
	case "":
		return Errorf(CodeBadRequest, "frame has no \"type\"")
	default:
		return Errorf(CodeBadRequest, "unknown type %q", c.Type)
	}
}
