import type { ChildProcess } from 'node:child_process';

/**
 * Ends every child in `children` (emptying the list): SIGTERM first, so a serving demo removes its
 * temporary directory on the way out, then SIGKILL for whatever is still there after 5 s.
 */
export async function stopChildren(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.splice(0).map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }),
  );
}
