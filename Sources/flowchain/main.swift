print("flowchain")
