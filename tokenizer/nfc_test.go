package tokenizer

import "testing"

func TestNFC(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain ascii", "plain ascii"},
		{"e\u0301", "é"},
		{"A\u030A", "Å"},
		{"\u212B", "Å"},        // Ångström sign: singleton decomposition
		{"a\u0323\u0302", "ậ"}, // reordered marks compose in turn
		{"a\u0302\u0323", "ậ"},
		{"\u1100\u1161\u11A8", "각"},        // Hangul jamo compose
		{"\uAC00\u11A8", "각"},              // LV + T
		{"e\u0301\xff", "é\xff"},           // invalid bytes are kept
		{"\u0958", "\u0915\u093C"},         // composition exclusion stays decomposed
		{"q\u0307\u0323", "q\u0323\u0307"}, // canonical order only
		{"中文 테스트", "中文 테스트"},
		{"\u00C5\u0301", "\u01FA"},
	} {
		if got := nfc(tc.in); got != tc.want {
			t.Errorf("nfc(%+q) = %+q, want %+q", tc.in, got, tc.want)
		}
	}
	if nfcUnicodeVersion == "" {
		t.Error("no Unicode version")
	}
}
