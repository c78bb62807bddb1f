/**
 * proto/meta.proto as protobufjs JSON: the schema as data, so the encoder needs
 * no file at run time (and a bundle carries it). Generated from the .proto;
 * test/integration/core/index/meta/meta.test.ts checks the two are the same.
 */
export const META_SCHEMA = {
  "nested": {
    "hotplugd": {
      "nested": {
        "meta": {
          "nested": {
            "Meta": {
              "fields": {
                "modules": {
                  "rule": "repeated",
                  "type": "Module",
                  "id": 1
                },
                "moduleDeviceMatches": {
                  "type": "RadixNode",
                  "id": 2,
                  "protoName": "module_device_matches"
                },
                "builtinDeviceMatches": {
                  "type": "RadixNode",
                  "id": 100,
                  "protoName": "builtin_device_matches"
                },
                "softdeps": {
                  "rule": "repeated",
                  "type": "Softdep",
                  "id": 101
                },
                "kernelRelease": {
                  "type": "string",
                  "id": 102,
                  "protoName": "kernel_release"
                },
                "compiledDeviceMatches": {
                  "type": "CompiledMatcher",
                  "id": 103,
                  "protoName": "compiled_device_matches"
                },
                "compiledBuiltinDeviceMatches": {
                  "type": "CompiledMatcher",
                  "id": 104,
                  "protoName": "compiled_builtin_device_matches"
                },
                "byteClasses": {
                  "rule": "repeated",
                  "type": "bytes",
                  "id": 105,
                  "protoName": "byte_classes"
                },
                "checksum": {
                  "type": "bytes",
                  "id": 106
                },
                "modulesWithoutFile": {
                  "rule": "repeated",
                  "type": "uint32",
                  "id": 107,
                  "protoName": "modules_without_file"
                },
                "cache": {
                  "type": "CacheRecord",
                  "id": 108
                },
                "crc32": {
                  "type": "fixed32",
                  "id": 109
                },
                "moduleTable": {
                  "type": "ModuleTable",
                  "id": 110,
                  "protoName": "module_table"
                }
              }
            },
            "ModuleTable": {
              "fields": {
                "names": {
                  "type": "bytes",
                  "id": 1
                },
                "paths": {
                  "type": "bytes",
                  "id": 2
                },
                "depStart": {
                  "type": "bytes",
                  "id": 3,
                  "protoName": "dep_start"
                },
                "deps": {
                  "type": "bytes",
                  "id": 4
                }
              }
            },
            "CacheRecord": {
              "fields": {
                "format": {
                  "type": "uint32",
                  "id": 1
                },
                "kernelRelease": {
                  "type": "string",
                  "id": 2,
                  "protoName": "kernel_release"
                },
                "modulesDir": {
                  "type": "string",
                  "id": 3,
                  "protoName": "modules_dir"
                },
                "statTimeNs": {
                  "type": "int64",
                  "id": 4,
                  "protoName": "stat_time_ns"
                },
                "sources": {
                  "rule": "repeated",
                  "type": "CacheSource",
                  "id": 5
                }
              }
            },
            "CacheSource": {
              "fields": {
                "path": {
                  "type": "string",
                  "id": 1
                },
                "present": {
                  "type": "bool",
                  "id": 2
                },
                "size": {
                  "type": "uint64",
                  "id": 3
                },
                "mtimeNs": {
                  "type": "int64",
                  "id": 4,
                  "protoName": "mtime_ns"
                },
                "ino": {
                  "type": "uint64",
                  "id": 5
                },
                "sha256": {
                  "type": "bytes",
                  "id": 6
                }
              }
            },
            "CompiledMatcher": {
              "fields": {
                "format": {
                  "type": "uint32",
                  "id": 1
                },
                "nodes": {
                  "type": "uint32",
                  "id": 2
                },
                "edgeStart": {
                  "type": "bytes",
                  "id": 3,
                  "protoName": "edge_start"
                },
                "edgeToken": {
                  "type": "bytes",
                  "id": 4,
                  "protoName": "edge_token"
                },
                "edgeTarget": {
                  "type": "bytes",
                  "id": 5,
                  "protoName": "edge_target"
                },
                "isStar": {
                  "type": "bytes",
                  "id": 6,
                  "protoName": "is_star"
                },
                "valueStart": {
                  "type": "bytes",
                  "id": 7,
                  "protoName": "value_start"
                },
                "values": {
                  "type": "bytes",
                  "id": 8
                },
                "patterns": {
                  "type": "uint32",
                  "id": 9
                },
                "padding": {
                  "type": "bytes",
                  "id": 10
                },
                "byteClass": {
                  "type": "bytes",
                  "id": 11,
                  "protoName": "byte_class"
                }
              }
            },
            "Module": {
              "fields": {
                "name": {
                  "type": "string",
                  "id": 1
                },
                "path": {
                  "type": "string",
                  "id": 2
                },
                "depends": {
                  "rule": "repeated",
                  "type": "uint32",
                  "id": 3
                }
              }
            },
            "RadixNode": {
              "fields": {
                "type": {
                  "type": "Type",
                  "id": 1
                },
                "literal": {
                  "type": "string",
                  "id": 2
                },
                "startByte": {
                  "type": "uint32",
                  "id": 3,
                  "protoName": "start_byte"
                },
                "endByte": {
                  "type": "uint32",
                  "id": 4,
                  "protoName": "end_byte"
                },
                "children": {
                  "rule": "repeated",
                  "type": "RadixNode",
                  "id": 5
                },
                "moduleIndex": {
                  "rule": "repeated",
                  "type": "uint32",
                  "id": 6,
                  "protoName": "module_index"
                }
              },
              "nested": {
                "Type": {
                  "values": {
                    "LITERAL": 0,
                    "WILDCARD": 1,
                    "SINGLE_WILDCARD": 2,
                    "BYTE_RANGE": 3,
                    "ROOT": 4
                  }
                }
              }
            },
            "Softdep": {
              "fields": {
                "module": {
                  "type": "string",
                  "id": 1
                },
                "pre": {
                  "rule": "repeated",
                  "type": "string",
                  "id": 2
                },
                "post": {
                  "rule": "repeated",
                  "type": "string",
                  "id": 3
                }
              }
            }
          }
        }
      }
    }
  }
} as const;
