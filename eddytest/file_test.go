package eddytest

import (
	"testing"
)

func TestExampleOrders(t *testing.T) {
	TestFile(t, "../examples/orders/pipeline_test.yaml", FileConfig{})
}
