// Package cn holds the conventions both Chinese clouds' APIs share, for the
// clients and the emulators alike: local times in Asia/Shanghai, and phone
// numbers and prefixes as plain digits.
package cn

import "time"

// Shanghai is Asia/Shanghai without the host's zone database (a static
// binary on FC has none): China has kept UTC+8 without daylight saving
// since 1991.
var Shanghai = time.FixedZone("CST", 8*60*60)

// TimeLayout is how the clouds write a local time (Dyplsapi's PurchaseTime
// and operatingTime, VMS's NumberPurchaseTime).
const TimeLayout = "2006-01-02 15:04:05"

// MaxNumberLen is the longest phone number either cloud answers with.
const MaxNumberLen = 20

// Digits reports whether s holds only the digits 0-9 ("" does).
func Digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// PhoneNumber reports whether s is a phone number: 1 to MaxNumberLen digits.
func PhoneNumber(s string) bool {
	return s != "" && len(s) <= MaxNumberLen && Digits(s)
}
