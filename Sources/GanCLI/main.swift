import Engine
print("gan")
