package logging

// For the external tests: the string scrubber and its mark.
var Scrub = scrub

const Redacted = redacted
