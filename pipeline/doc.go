// Package pipeline loads eddy pipeline files.
package pipeline
