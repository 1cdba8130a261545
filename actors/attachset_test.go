package actors

import (
	"slices"
	"testing"
)

func TestAttachSet(t *testing.T) {
	t.Parallel()
	type op struct {
		add, remove string
	}
	tests := []struct {
		name string
		ops  []op
		want []string
	}{
		{"empty", nil, nil},
		{"one", []op{{add: "a"}}, []string{"a"}},
		{"same twice", []op{{add: "a"}, {add: "a"}}, []string{"a"}},
		{"three", []op{{add: "a"}, {add: "b"}, {add: "c"}}, []string{"a", "b", "c"}},
		{"remove the one, another is promoted", []op{{add: "a"}, {add: "b"}, {remove: "a"}}, []string{"b"}},
		{"remove one of more", []op{{add: "a"}, {add: "b"}, {add: "c"}, {remove: "b"}}, []string{"a", "c"}},
		{"remove all then add", []op{{add: "a"}, {remove: "a"}, {add: "b"}}, []string{"b"}},
		{"remove absent", []op{{add: "a"}, {remove: "x"}}, []string{"a"}},
		{"re-add after promotion", []op{{add: "a"}, {add: "b"}, {remove: "a"}, {add: "b"}, {add: "a"}}, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s attachSet
			for _, o := range tt.ops {
				if o.add != "" {
					s.add(o.add)
				} else {
					s.remove(o.remove)
				}
			}
			var got []string
			s.each(func(id string) { got = append(got, id) })
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("each: %v, want %v", got, tt.want)
			}
			for _, id := range []string{"a", "b", "c", "x", ""} {
				if want := slices.Contains(tt.want, id); s.has(id) != want {
					t.Errorf("has(%q) = %v, want %v", id, s.has(id), want)
				}
			}
		})
	}
}
