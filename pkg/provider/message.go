package provider

import (
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// maxMessageRunes bounds a message made safe by SafeMessage: a provider's
// message is shown to callers and kept with an order, and a longer one (a
// proxy's HTML page) is not a message.
const maxMessageRunes = 300

// echoCut is what SafeMessage puts where it cut a quoted request.
const echoCut = "[the signed request it quoted is not shown]"

// The patterns are compiled on first use: SafeMessage runs on error paths.
var (
	// The start of a quoted request: Dyplsapi's SignatureDoesNotMatch says
	// "server string to sign is:GET&%2F&AccessKeyId%3D…", SigV4-style
	// gateways (Volcengine's) may quote the canonical request or string.
	echoStart = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)string[ _-]?to[ _-]?sign|canonical[ _-]?(?:request|string)`)
	})
	// A credential named in the text, as a word of its own: name=value,
	// name%3Dvalue (encoded once or more), "name":"value" or name: value. Key ids are not secrets, but
	// an order's error is shown to whoever can read the order, and the id
	// tells them which key to go after.
	credentialPair = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)(^|[^A-Za-z])((?:AccessKey(?:Id|Secret)?|SecretAccessKey|SecurityToken|SessionToken|Signature|Credential|Authorization)(?:=|%(?:25)*3D|"?\s*:\s*"?))[^&\s"',;]+`)
	})
	// scheme://user:password@.
	userPassword = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@`)
	})
)

// SafeMessage makes s, a message a provider sent back or an error's text,
// safe to show to a caller and to keep with an order and in its events: one
// line of valid UTF-8 without control characters, at most maxMessageRunes
// characters, with no quoted request and no credential. What follows a
// "string to sign" or "canonical request" is cut (it repeats every signed
// parameter: the key id and, with STS, the security token), and the values
// of AccessKeyId, AccessKeySecret, SecurityToken, Signature, Credential and
// a URL's password are replaced.
func SafeMessage(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	if loc := echoStart().FindStringIndex(s); loc != nil {
		head := s[:loc[0]]
		if i := strings.LastIndex(head, "."); i >= 0 {
			head = head[:i+1] // the sentence before the quote
		}
		s = strings.TrimRight(head, " \t\r\n:;,-") + " " + echoCut
	}
	if strings.ContainsAny(s, "=%:@") {
		s = credentialPair().ReplaceAllString(s, "${1}${2}[redacted]")
		s = userPassword().ReplaceAllString(s, "${1}[redacted]@")
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > maxMessageRunes {
		s = string([]rune(s)[:maxMessageRunes]) + "…"
	}
	return s
}
