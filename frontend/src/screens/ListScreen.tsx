import { DiscussionList } from "../components/DiscussionList";
import { t } from "../i18n";
import { useMe } from "../me";

/** The inbox or the trash: discussions, newest activity first. */
export function ListScreen({ folder }: { folder: "inbox" | "trash" }) {
  const me = useMe();
  return (
    <>
      <h1>{folder === "inbox" ? t("list.title") : t("list.trashTitle")}</h1>
      <DiscussionList folder={folder} ownAddresses={me.ownAddresses} />
    </>
  );
}
