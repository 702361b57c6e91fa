// Package config reads configuration structs the way their yaml tags describe them, for cmd/smppgw's
// file and environment and for gateway's settings kept in the store: a strict YAML decode (Decode),
// an environment overlay where a prefix + the YAML path in upper case sets a scalar (ApplyEnv,
// EnvNames), and a flat form, dotted YAML paths to scalar text (Flatten, Unflatten). One walker
// serves them all, so a setting has the same name in a file, in the environment and in the store.
//
// It knows no setting by name and must not: the structs, their defaults and their validation belong
// to the packages that own them. It is internal because it is a means of cmd and gateway, not API.
package config
