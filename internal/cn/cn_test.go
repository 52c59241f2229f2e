package cn

import (
	"strings"
	"testing"
	"time"
)

func TestNumbers(t *testing.T) {
	for _, tc := range []struct {
		s             string
		digits, phone bool
	}{
		{"", true, false},
		{"13800000000", true, true},
		{"0571", true, true},
		{strings.Repeat("1", MaxNumberLen), true, true},
		{strings.Repeat("1", MaxNumberLen+1), true, false},
		{"+8613800000000", false, false},
		{"138 0000", false, false},
		{"１３８", false, false}, // full-width digits are not digits here
	} {
		if Digits(tc.s) != tc.digits || PhoneNumber(tc.s) != tc.phone {
			t.Errorf("%q: Digits %v, PhoneNumber %v; want %v, %v", tc.s, Digits(tc.s), PhoneNumber(tc.s), tc.digits, tc.phone)
		}
	}
}

func TestShanghai(t *testing.T) {
	at, err := time.ParseInLocation(TimeLayout, "2026-03-01 08:00:00", Shanghai)
	if err != nil || !at.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("08:00 in Shanghai = %v (%v), want 00:00 UTC", at.UTC(), err)
	}
}
