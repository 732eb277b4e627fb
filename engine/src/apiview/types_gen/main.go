// Writes ../types.txt: the JSON field names and omission marks of the types the admission view
// knows, read by reflection from k8s.io/api. Build it in a module that pins k8s.io/api (copy
// e2e/kube/go.mod and go.sum beside it, rename the module) and run:
//
//	(head -13 ../types.txt; go run main.go) > ../types.txt.new && mv ../types.txt.new ../types.txt
//
// Not part of any build.

//go:build ignore

package main

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var seen = map[string]bool{}
var queue []reflect.Type
var out = map[string]string{}

func name(t reflect.Type) string {
	switch t {
	case reflect.TypeOf(resource.Quantity{}):
		return "q"
	case reflect.TypeOf(intstr.IntOrString{}):
		return "n"
	case reflect.TypeOf(metav1.Time{}), reflect.TypeOf(metav1.MicroTime{}):
		return "t"
	}
	switch t.Kind() {
	case reflect.Ptr:
		return "*" + name(t.Elem())
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "s" // []byte encodes as base64 string
		}
		return "[" + name(t.Elem()) + "]"
	case reflect.Map:
		return "{" + name(t.Elem()) + "}"
	case reflect.String:
		return "s"
	case reflect.Bool:
		return "b"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Int16, reflect.Uint8:
		return "i"
	case reflect.Float32, reflect.Float64:
		return "f"
	case reflect.Interface:
		return "a"
	case reflect.Struct:
		n := t.Name()
		if t.PkgPath() == "k8s.io/apimachinery/pkg/runtime" && n == "RawExtension" {
			return "a"
		}
		if !seen[t.String()] {
			seen[t.String()] = true
			queue = append(queue, t)
		}
		return n
	}
	panic(t.String())
}

func fields(t reflect.Type, acc *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		parts := strings.Split(tag, ",")
		if f.Anonymous && parts[0] == "" {
			fields(f.Type, acc)
			continue
		}
		if !f.IsExported() {
			continue
		}
		opts := map[string]bool{}
		for _, p := range parts[1:] {
			opts[p] = true
		}
		flag := "!"
		if opts["omitempty"] {
			flag = ""
		}
		if opts["omitzero"] {
			flag = "~"
		}
		*acc = append(*acc, parts[0]+"="+name(f.Type)+flag)
	}
}

func main() {
	roots := []any{corev1.Pod{}, corev1.Service{}, corev1.ConfigMap{}, corev1.Secret{}, corev1.Namespace{}, corev1.ServiceAccount{}, corev1.PersistentVolumeClaim{},
		appsv1.Deployment{}, appsv1.ReplicaSet{}, appsv1.StatefulSet{}, appsv1.DaemonSet{}, batchv1.Job{}, batchv1.CronJob{},
		networkingv1.NetworkPolicy{}, networkingv1.Ingress{}, rbacv1.Role{}, rbacv1.ClusterRole{}, rbacv1.RoleBinding{}, rbacv1.ClusterRoleBinding{}, policyv1.PodDisruptionBudget{}}
	for _, r := range roots {
		name(reflect.TypeOf(r))
	}
	names := map[string]string{}
	for len(queue) > 0 {
		t := queue[0]
		queue = queue[1:]
		if prev, ok := names[t.Name()]; ok && prev != t.String() {
			panic("clash " + t.String() + " " + prev)
		}
		names[t.Name()] = t.String()
		var acc []string
		fields(t, &acc)
		out[t.Name()] = t.Name() + " " + strings.Join(acc, " ")
	}
	var keys []string
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Println(out[k])
	}
}
