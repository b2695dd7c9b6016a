def step(i, acc): return acc + (i % 7) * 0.5
acc = 0.0
for i in range(10000000): acc = step(i, acc)
print(acc)
