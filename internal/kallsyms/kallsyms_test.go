package kallsyms

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tab, err := Parse(strings.NewReader(`ffffffff81000000 T _text
ffffffff81200000 t page_counter_charge
ffffffff81200100 T page_counter_try_charge
ffffffff81300000 d memcg_stock
000000000002d340 A some_percpu_var
ffffffffc0000000 t mod_fn	[mod]
`))
	if err != nil {
		t.Fatal(err)
	}
	if !tab.Has("page_counter_charge") || !tab.Has("mod_fn") || tab.Has("memcg_stock") || tab.Has("try_charge") {
		t.Error("Has does not match the text symbols")
	}
	got := tab.Names([]uint64{0xffffffff81200010, 0xffffffff81200100, 0xffffffffc0000008, 0x1000, 0, 0xffffffff81200010})
	want := []string{"page_counter_charge", "page_counter_try_charge", "mod_fn"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Names: got %v, want %v", got, want)
	}
}

func TestParseHidden(t *testing.T) {
	tab, err := Parse(strings.NewReader("0000000000000000 T _text\n0000000000000000 t page_counter_charge\n"))
	if !errors.Is(err, ErrHidden) {
		t.Errorf("zero addresses: err %v, want ErrHidden", err)
	}
	if !tab.Has("page_counter_charge") {
		t.Error("hidden addresses still name the functions")
	}
}
