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

// Validate checks the fields the command's type requires.
func (c *Command) Validate() *Error {
	switch c.Type {
	case CmdPing, CmdCreate:
		return nil
	case CmdAttach, CmdDetach, CmdStop, CmdRegenerate:
		if c.Session == "" {
			return Errorf(CodeBadRequest, "%s needs \"session\"", c.Type)
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
