package charter

import (
	"embed"
	"fmt"
	"strings"
)

// templateFiles holds the charter templates, one commented YAML file each.
//
//go:embed templates/*.yaml
var templateFiles embed.FS

// TemplateNames returns the names of the charter templates that ship with
// the program, in the order to offer them: "desk", "ladder", "collective".
// The caller owns the returned slice.
func TemplateNames() []string {
	return []string{"desk", "ladder", "collective"}
}

// TemplateYAML returns the YAML file of the template called name, with its
// comments. The caller owns the returned slice. An unknown name is an error
// that lists the templates.
func TemplateYAML(name string) ([]byte, error) {
	for _, n := range TemplateNames() {
		if n == name {
			return templateFiles.ReadFile("templates/" + name + ".yaml")
		}
	}
	return nil, fmt.Errorf("charter: unknown template %q (templates are: %s)", name, strings.Join(TemplateNames(), ", "))
}

// Template returns a new copy of the charter of the template called name.
// An unknown name is an error that lists the templates.
func Template(name string) (*Charter, error) {
	src, err := TemplateYAML(name)
	if err != nil {
		return nil, err
	}
	c, err := Parse(src)
	if err != nil {
		return nil, fmt.Errorf("charter: template %s: %w", name, err)
	}
	return c, nil
}
