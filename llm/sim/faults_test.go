package sim_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/llm/sim"
)

func TestParseFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec string
		want sim.Faults
		str  string // String(); "" means spec itself
	}{
		{"", sim.Faults{}, "none"},
		{"none", sim.Faults{}, ""},
		{" NONE ", sim.Faults{}, "none"},
		{"unavailable_every=10", sim.Faults{Unavailable: sim.Select{Every: 10}}, ""},
		{"unavailable_rate=0.05,retry_after=2s", sim.Faults{Unavailable: sim.Select{Rate: 0.05}, RetryAfter: 2 * time.Second}, ""},
		{"cut_after=50", sim.Faults{Cut: sim.Select{Every: 1}, CutAfter: 50}, ""},
		{"cut_after=0,cut_every=1", sim.Faults{Cut: sim.Select{Every: 1}}, "cut_after=0"},
		{"cut_every=4, cut_after=3 ,", sim.Faults{Cut: sim.Select{Every: 4}, CutAfter: 3}, "cut_after=3,cut_every=4"},
		{"error_after=12,error_rate=0.5", sim.Faults{Error: sim.Select{Rate: 0.5}, ErrorAfter: 12}, ""},
		{"pause_after=10,pause=30s", sim.Faults{Pause: sim.Select{Every: 1}, PauseAfter: 10, PauseFor: 30 * time.Second}, ""},
		{"pause=1m30s,pause_after=0,pause_every=100", sim.Faults{Pause: sim.Select{Every: 100}, PauseFor: 90 * time.Second},
			"pause_after=0,pause=1m30s,pause_every=100"},
		{"Unavailable_Every=10,CUT_AFTER=50", sim.Faults{Unavailable: sim.Select{Every: 10}, Cut: sim.Select{Every: 1}, CutAfter: 50},
			"unavailable_every=10,cut_after=50"},
		{"unavailable_every=10,retry_after=1s,cut_after=50,cut_rate=0.1,error_after=80,error_every=7,pause_after=5,pause=20s,pause_rate=0.01",
			sim.Faults{Unavailable: sim.Select{Every: 10}, RetryAfter: time.Second, Cut: sim.Select{Rate: 0.1}, CutAfter: 50,
				Error: sim.Select{Every: 7}, ErrorAfter: 80, Pause: sim.Select{Rate: 0.01}, PauseAfter: 5, PauseFor: 20 * time.Second}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			t.Parallel()
			got, err := sim.ParseFaults(tt.spec)
			if err != nil {
				t.Fatalf("ParseFaults(%q) = %v", tt.spec, err)
			}
			if got != tt.want {
				t.Errorf("ParseFaults(%q)\n got %+v\nwant %+v", tt.spec, got, tt.want)
			}
			want := tt.str
			if want == "" {
				want = tt.spec
			}
			if s := got.String(); s != want {
				t.Errorf("String() = %q, want %q", s, want)
			}
			if back, err := sim.ParseFaults(got.String()); err != nil || back != got {
				t.Errorf("String() %q reads back as %+v, %v", got.String(), back, err)
			}
		})
	}
}

func TestParseFaultsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec string
		want string // in the error
	}{
		{"cut_after", `"cut_after" is not key=value`},
		{"cut_after=", `"cut_after=" is not key=value`},
		{"bogus=1", `unknown key "bogus" (keys: unavailable_every, unavailable_rate`},
		{"cut_after=1,cut_after=2", "cut_after is given twice"},
		{"cut_after=-1", "cut_after=-1: want a whole number of tokens"},
		{"cut_after=ten", "cut_after=ten: want a whole number"},
		{"unavailable_every=0", "unavailable_every=0: want a whole number of requests, 1 or more"},
		{"unavailable_rate=0", "want a fraction of requests above 0 and at most 1"},
		{"unavailable_rate=1.5", "at most 1"},
		{"unavailable_rate=NaN", "fraction"},
		{"unavailable_rate=10%", "fraction"},
		{"unavailable_every=2,unavailable_rate=0.5", "give one of unavailable_every and unavailable_rate"},
		{"cut_after=2,cut_every=2,cut_rate=0.5", "give one of cut_every and cut_rate"},
		{"cut_every=2", "cut_every or cut_rate needs cut_after"},
		{"error_rate=0.5", "needs error_after"},
		{"pause_every=3,pause_after=1,pause=1s,", ""},
		{"pause_after=3", "give both pause_after=K"},
		{"pause=3s", "give both pause_after=K"},
		{"pause_after=3,pause=0s", "pause=0s: want a positive Go duration"},
		{"pause_after=3,pause=5", "want a positive Go duration"},
		{"retry_after=2s", "retry_after needs unavailable_every or unavailable_rate"},
		{"retry_after=-2s,unavailable_every=1", "retry_after=-2s: want a positive Go duration"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			t.Parallel()
			_, err := sim.ParseFaults(tt.spec)
			if tt.want == "" {
				if err != nil {
					t.Errorf("ParseFaults(%q) = %v, want success", tt.spec, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseFaults(%q) succeeded, want an error with %q", tt.spec, tt.want)
			}
			var fe *sim.FaultSpecError
			if !errors.Is(err, sim.ErrFaultSpec) || !errors.As(err, &fe) {
				t.Errorf("error %v is not a *FaultSpecError wrapping ErrFaultSpec", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseFaults(%q) = %q, want it to contain %q", tt.spec, err, tt.want)
			}
		})
	}
}

func TestFaultsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    sim.Faults
		want string // "" = valid
	}{
		{"zero", sim.Faults{}, ""},
		{"negative every", sim.Faults{Cut: sim.Select{Every: -1}}, "cut_every"},
		{"both", sim.Faults{Error: sim.Select{Every: 2, Rate: 0.5}}, "both error_every and error_rate"},
		{"negative position", sim.Faults{Cut: sim.Select{Every: 1}, CutAfter: -3}, "cut_after is negative"},
		{"pause of zero", sim.Faults{Pause: sim.Select{Rate: 0.5}}, "pause is 0s"},
		{"negative retry", sim.Faults{Unavailable: sim.Select{Every: 1}, RetryAfter: -time.Second}, "retry_after"},
	}
	for _, tt := range tests {
		err := tt.f.Validate()
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.want)
		}
	}
}
